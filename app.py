"""Quantization lab: placeholder entry until the dashboard lands; shows one live run."""

import streamlit as st

from qcore import load_preset, run

st.set_page_config(page_title="Quantization lab", layout="wide")
st.title("Quantization lab")
rec = run(load_preset("small"), "int8").record
st.metric("small / int8 compression", f"{rec['compression_ratio']:.2f}x")
