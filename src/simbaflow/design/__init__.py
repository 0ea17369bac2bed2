"""Design stage: analytic tuning, discretisation, closed-loop checks."""
