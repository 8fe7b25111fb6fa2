"""Business operations (writes). Plain keyword-only functions; admin, tasks and commands call them."""
