"""The IB program's data: introducing brokers and their hierarchy, referral links and clicks, plans, commissions."""
