"""Rule hints: gazetteer and pattern matches become per-token tags the model embeds."""

from __future__ import annotations

import pytest
import torch

from edupair.features import Featurizer, collate
from edupair.lexicon import ENTITY_HINT_CHANNELS, HINT_CHANNELS, HINT_TAGS, hint_source
from edupair.model import EduPairModel
from edupair.schema import ENTITY_LABELS, RELATION_LABELS

from .conftest import ENCODER, make_doc, needs_encoder

REGION, SCHOOL, PROGRAM, NUMBER = range(4)


def tags_of(text: str, surface: str, channel: int) -> str:
    """The BIES letters of one channel over the characters of `surface` in `text`."""
    start = text.index(surface)
    tags = hint_source("cpca").hint_tags(text)
    return "".join(HINT_TAGS[t[channel]] for t in tags[start:start + len(surface)])


def test_packaged_gazetteer_marks_chained_regions_and_short_forms():
    text = make_doc().text
    assert tags_of(text, "成都市温江区", REGION) == "BIIIIE"      # 成都市 + 温江区 chained into one match
    assert tags_of(text, "与", REGION) == "O"
    assert tags_of("温江的学校", "温江", REGION) == "BE"            # short form of 温江区


def test_patterns_mark_schools_programs_and_numbers():
    text = make_doc().text
    assert tags_of(text, "巴南实验小学", SCHOOL) == "BIIIIE"
    assert tags_of(text, "12所", NUMBER) == "BIE"
    assert tags_of(text, "“山海同行”计划", PROGRAM) == "BIIIIIIE"
    assert tags_of("2021年", "2021年", NUMBER) == "OOOOO"            # dates are not amounts


def test_trigger_words_have_their_own_channels():
    text = make_doc().text
    pair, join = HINT_CHANNELS.index("PAIR_TRIGGER"), HINT_CHANNELS.index("JOIN_TRIGGER")
    assert tags_of(text, "结对", pair) == "BE" and tags_of(text, "加入", join) == "BE"
    four = hint_source("cpca").hint_tags(text, ENTITY_HINT_CHANNELS)   # a model trained before the triggers
    assert all(len(t) == 4 for t in four)


def test_hints_are_deterministic_and_one_tuple_per_character():
    text = "广东信宜市、高州市和化州市同忻城县开展协作。"
    first, second = hint_source("cpca").hint_tags(text), hint_source("cpca").hint_tags(text)
    assert first == second and len(first) == len(text)
    assert all(len(t) == len(HINT_CHANNELS) for t in first)


def test_unknown_hint_source_names_itself():
    with pytest.raises(FileNotFoundError, match="no-such-table"):
        hint_source("no-such-table")


@needs_encoder
def test_tokens_carry_hints_and_the_model_reads_them():
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(ENCODER))
    source = hint_source("cpca")
    feat = Featurizer(tok, list(ENTITY_LABELS), list(RELATION_LABELS), 128, 100, 20,
                      hinter=source.hint_tags, hint_channels=len(HINT_CHANNELS))
    doc = make_doc()
    (f,) = feat.encode_document(doc)
    chars = source.hint_tags(doc.text)
    assert f.hints[0] == (0,) * len(HINT_CHANNELS)                    # [CLS]
    assert all(f.hints[i] == chars[s] for i, (s, e) in enumerate(f.offsets) if e > s)
    batch = collate([f], tok.pad_token_id, len(ENTITY_LABELS))
    assert batch["hints"].shape == (1, len(f.input_ids), len(HINT_CHANNELS))

    torch.manual_seed(0)
    tiny = {"num_hidden_layers": 1, "hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64}
    model = EduPairModel.from_encoder(str(ENCODER), list(ENTITY_LABELS), list(RELATION_LABELS), 16, random_init=True,
                                      encoder_overrides=tiny, pair_size=16, hint_channels=len(HINT_CHANNELS),
                                      hint_tags=len(HINT_TAGS)).eval()
    with torch.no_grad():
        with_hints = model.encode(batch["input_ids"], batch["attention_mask"], batch["hints"])["hidden"]
        blank = model.encode(batch["input_ids"], batch["attention_mask"], torch.zeros_like(batch["hints"]))["hidden"]
    assert not torch.allclose(with_hints, blank)
    assert "hint_embedding.weight" in model.encoder_parameter_names()
    with pytest.raises(ValueError, match="hint tags"):
        model.encode(batch["input_ids"], batch["attention_mask"])
