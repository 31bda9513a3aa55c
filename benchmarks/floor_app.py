"""The floor of bench_app_latency.py: the smallest Streamlit app that does what nnviz's pages
do, one ``select_slider`` and one plotly chart redrawn when it moves (a histogram of 20,000
numbers that depend on the slider's value, like a weight histogram at one epoch).

    streamlit run benchmarks/floor_app.py
"""

import numpy as np
import plotly.graph_objects as go
import streamlit as st

st.title("Floor app")
epoch = st.select_slider("Epoch", options=list(range(10)), value=0, key="epoch")
values = np.random.default_rng(epoch).normal(0.0, 1.0 + 0.1 * epoch, 20_000)
counts, edges = np.histogram(values, bins=60, range=(-5, 5))
fig = go.Figure(go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=counts))
fig.update_layout(title_text=f"floor · epoch {epoch}", height=360)
st.plotly_chart(fig, width="stretch", theme=None)
