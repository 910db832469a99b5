from sim.app.psa_page import page

page()
