"""Graph through msgraph-sdk: the client and its middleware, the directory, delta reads, Teams
numbers, user configurations, policies, failure translation and pacing."""
