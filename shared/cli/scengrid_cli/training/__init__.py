"""Training the PD model the credit overlay serves (scikit-learn, exported to ONNX) from its synthetic ground truth."""
