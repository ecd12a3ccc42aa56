-- aep init DIR: a starter project to begin from (aep.starter writes it and holds the command).
return require("aep.starter").command
