"""Privacy and trust: consent, and what follows from it everywhere a customer's data goes."""
