"""The csfsim web app for health-service planners (`make app` or `csfsim app`): build a scenario, run and compare,
sweep a parameter, run a PSA. Every page calls csfsim's Python API; the model's rules are not repeated here."""

from pathlib import Path

import streamlit as st

PAGES = Path(__file__).parent / "pages"

st.set_page_config(page_title="csfsim: CSF-leak care pathway planner", layout="wide")
st.navigation([
    st.Page(PAGES / "scenario.py", title="Build a scenario", icon=":material/domain:", default=True),
    st.Page(PAGES / "compare.py", title="Run and compare", icon=":material/compare_arrows:"),
    st.Page(PAGES / "sweep.py", title="Sweep a parameter", icon=":material/show_chart:"),
    st.Page(PAGES / "psa.py", title="Uncertainty (PSA)", icon=":material/casino:"),
]).run()
