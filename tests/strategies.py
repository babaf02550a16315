"""Hypothesis strategies shared by every test module."""

from __future__ import annotations

from hypothesis import strategies as st

LOWER = st.sampled_from("abcdefghijklmnopqrstuvwxyzßéøœπжя")
UPPER = st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZÉØŒΠЖЯ")
DIGIT = st.sampled_from("0123456789٠١٢٣४५")
SPECIAL = st.sampled_from(" !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~§¶€£¥©®°±×÷¿¡")
CASELESS = st.sampled_from("中文字שלוםمرحبا")

#: Any text Python can hold, lone surrogates and control characters included.
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=64)
