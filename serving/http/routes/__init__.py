"""HTTP routes, one module per API family; `deps` holds what they share."""
