"""What runs template.yaml outside AWS: provisioning on moto, the local stack, its pollers."""
