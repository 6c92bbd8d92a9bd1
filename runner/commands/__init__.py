"""One module per `mprun` subcommand, each a function of keyword options returning an exit status."""
