"""The whole experiment on one machine: real collectors, LoadSim and Prometheus on loopback."""
