"""`modelyard advise`: self-hosting, hosted and proprietary APIs, and a hybrid, priced for one workload."""
