"""Planning a run on AWS before pressing go: wall time, cost, tasks and subnet sizing, from a
discrete-event simulation of Batch on Fargate (Spot) with dated price defaults."""
