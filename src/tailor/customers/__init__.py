"""Customer intelligence: 360/RFM features, segments, lifetime value, churn, anomalies."""
