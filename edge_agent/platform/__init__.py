"""What the agent reads from the board it runs on (Jetson: tegrastats), exported as agent metrics."""
