"""Journey evaluation: the tick, who enrolls, who advances, holdouts, incremental planning."""
