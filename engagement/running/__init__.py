"""Running the engine: scheduled jobs, the worker loop, the secret policy at start-up."""
