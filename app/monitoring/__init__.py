"""Monitoring and efficacy for NHRIs: fixed tables of counts of women, released under
disclosure control and recorded (issue 20; docs/decisions/0033-monitoring-disclosure-control.md)."""
