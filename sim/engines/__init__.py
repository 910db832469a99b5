"""The two engines that run the model: SimPy (queues and capacity) and fast (numpy, when nothing can queue)."""
