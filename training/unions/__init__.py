"""Generated union populations for tests and benchmarks of union grading (serving/unions/)."""
