"""edupair: extract education-cooperation facts (regions, schools, programs, numbers) from Chinese text."""

__version__ = "0.1.0"
