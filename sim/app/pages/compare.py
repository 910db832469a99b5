from sim.app.compare_page import page

page()
