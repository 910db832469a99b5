from sim.app.scenario_page import page

page()
