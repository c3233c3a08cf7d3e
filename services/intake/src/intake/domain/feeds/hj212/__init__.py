"""HJ 212 packets from the environmental monitoring stations and the rules that make findings of them."""
