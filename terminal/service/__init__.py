"""The counter service: cashier operations over the core rules, the card verifier and the durable store."""
