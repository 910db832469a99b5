"""The clinical model: the ladder and the pathway's rules, the population and its random numbers, the patient record."""
