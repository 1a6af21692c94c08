"""Outage handling outside the pure core: where health lives, who is told, where deferred runs wait, and
how they drain once the primary is back."""
