"""Event buses: the in-process default and the RabbitMQ one for scaled deployments."""
