"""The HTML report of a run or a comparison."""
