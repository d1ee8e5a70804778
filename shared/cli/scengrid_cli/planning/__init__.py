"""Planning a run on AWS before pressing go: wall time, cost, tasks and subnet sizing, from a
discrete-event simulation of Batch on Fargate (Spot) with dated price defaults; and whether the
runs planned at once fit in what they share (Fargate vCPU quotas, MaxVcpus, subnet addresses)."""
