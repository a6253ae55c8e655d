"""The CS ops views: journeys, contacts and accounts as pages, with search and the explain panel."""
