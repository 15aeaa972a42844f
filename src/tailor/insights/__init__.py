"""Insights for the business, read from the warehouse: reports and weekly sales forecasts
(:mod:`tailor.insights.forecast`)."""
