"""Delivery: the ports messages leave by (email, webhook) and the dispatcher that uses them."""
