"""`qadmin scheduler`: the loop that fires recurring schedules' ticks (built in issue #16)."""
