-- aep.dataprep.catalog: what GET /languages/el/functions and /languages/el/operators list
-- (data-prep.yaml: {category, function, syntax, params, ...} and {operatorSymbol, methodName,
-- numberOfOperands, description, example}), built from the engine's own tables so the list and
-- what compiles never disagree.

local functions = require "aep.dataprep.functions"
local json = require "aep.json"

local M = {}

-- the categories of functions.md's sections (the API's example spells two: "Date / Time",
-- "Hierarchies - Arrays")
local CATEGORY = {
  strings = "String", regex = "Regular expression", hashing = "Hashing", url = "URL",
  datetime = "Date / Time", objects = "Hierarchies - Objects", arrays = "Hierarchies - Arrays",
  logical = "Logical operators", aggregation = "Aggregation", conversions = "Type conversions",
  json = "JSON", special = "Special operations", useragent = "User agent",
}

-- catalog.functions() -> list of {category, function, minArguments, maxArguments (json.null: any), returns}
function M.functions()
  local out = json.array({})
  for _, name in ipairs(functions.list()) do
    local def = functions.lookup(name)
    out[#out + 1] = { category = CATEGORY[def.family] or def.family, ["function"] = name,
      minArguments = def.min, maxArguments = def.max == math.huge and json.null or def.max, returns = def.returns }
  end
  return out
end

local OPERATORS = {
  { "+", "add", 2, "Simple arithmetic addition; joins text when either side is a non-numeric string", "1 + 2" },
  { "-", "subtract", 2, "Simple arithmetic subtraction", "3 - 1" },
  { "*", "multiply", 2, "Simple arithmetic multiplication", "2 * 3" },
  { "/", "divide", 2, "Simple arithmetic division (integers divide as integers); also div", "1 / 2" },
  { "%", "mod", 2, "Remainder of a division; also mod", "7 % 3" },
  { "==", "equals", 2, "Equality; also eq", "a == 1" },
  { "!=", "notEquals", 2, "Inequality; also ne", "a != 1" },
  { "<", "lessThan", 2, "Less than; also lt", "a < 1" },
  { "<=", "lessThanOrEqual", 2, "Less than or equal; also le", "a <= 1" },
  { ">", "greaterThan", 2, "Greater than; also gt", "a > 1" },
  { ">=", "greaterThanOrEqual", 2, "Greater than or equal; also ge", "a >= 1" },
  { "&&", "and", 2, "Logical and; also the word and", "cond1 && cond2" },
  { "||", "or", 2, "Logical or; also the word or", "cond1 || cond2" },
  { "!", "not", 1, "The usual ! operator can be used as well as the word not, e.g., !cond1 and not cond1 are equivalent", "!cond1" },
  { "-", "negate", 1, "The unary - operator is used. For example, -12", "-12" },
  { "~", "complement", 1, "The usual ~ operator is used, e.g., ~33, ~0010 0001 = 1101 1110 = -34.", "~44" },
  { "&", "bitwiseAnd", 2, "Bitwise and", "6 & 3" },
  { "|", "bitwiseOr", 2, "Bitwise or", "6 | 3" },
  { "^", "bitwiseXor", 2, "Bitwise exclusive or", "6 ^ 3" },
  { "=~", "matches", 2, "The whole string matches a regular expression, or the value is in an array", "a =~ '[0-9]+'" },
  { "!~", "notMatches", 2, "The negation of =~", "a !~ '[0-9]+'" },
  { "?:", "ternary", 3, "cond ? a : b, and a ?: b (a unless a is empty)", "a > 1 ? 'big' : 'small'" },
}

-- catalog.operators() -> list of {operatorSymbol, methodName, numberOfOperands, description, example}
function M.operators()
  local out = json.array({})
  for i, o in ipairs(OPERATORS) do
    out[i] = { operatorSymbol = o[1], methodName = o[2], numberOfOperands = o[3], description = o[4], example = o[5] }
  end
  return out
end

return M
