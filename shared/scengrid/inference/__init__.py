"""The PD model: its contract, its ground truth and training, and the loader that serves it
(in the inference Lambda, and inline in the workers)."""
