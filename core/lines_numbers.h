/* aep.lines' functions on numbers in record text: core/lines_numbers.c. */
#ifndef AEP_LINES_NUMBERS_H
#define AEP_LINES_NUMBERS_H

#include "aep.h"

/* lines.has_long_number(text [, "json" | "text"]) -> boolean */
int lines_has_long_number(lua_State *L);
/* lines.quote_long_integers(json_text) -> text with long integers quoted | nil */
int lines_quote_long_integers(lua_State *L);

#endif
