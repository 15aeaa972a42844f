"""Personalized marketing: who responds to which offer, next-best offers, campaign targeting and
the service desk's view of a customer."""
