from sim.app.sweep_page import page

page()
