"""Broker access: the embedded tansu process and the profiles that adapt clients to a broker."""
