"""Network's models: state and rules, no HTTP. One module per resource type."""
