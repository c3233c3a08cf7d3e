"""The simulated city without I/O: legacy records in their real formats, the stations and places they
come from, the mix of the networks, and how departments answer. Every function takes its clock and
random generator from the caller, so a seed and a start time reproduce a run exactly."""
