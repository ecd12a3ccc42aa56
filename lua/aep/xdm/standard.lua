-- aep.xdm.standard: Adobe's global XDM resources that the samples and the collection use,
-- keyed by $id, in the shape the Schema Registry returns with
-- "Accept: application/vnd.adobe.xed+json; version=1" (plain field names, meta:xdmType on
-- every field, $ref/allOf left unresolved, meta:containerId "global").
--
-- Field names, types, formats, enums and patterns follow adobe/xdm (components/classes,
-- components/fieldgroups, components/datatypes, components/behaviors), with the registry's
-- renaming ("xdm:firstName" -> "firstName", "@id" -> "_id", "repo:createDate" ->
-- "_repo.createDate", "dc:language" -> "_dc.language"). "Known values" (meta:enum without
-- enum) are suggestions, not constraints, exactly as in XDM.
--
--   standard[$id]      -> resource
--   standard.all()     -> array of the classes, field groups and data types (sorted by $id)
--   standard.list(kind)-> those of one meta:resourceType ("classes" | "mixins" | "datatypes" | "behaviors")

local SCHEMA = "http://json-schema.org/draft-06/schema#"

local R = {}   -- $id -> resource
local order = {}

local function alt_id(id)
  return "_" .. id:gsub("^https?://ns%.adobe%.com/", ""):gsub("/", ".")
end

local function resource(kind, id, title, description, defname, props, extra)
  local doc = {
    ["$id"] = id,
    ["meta:altId"] = alt_id(id),
    ["meta:resourceType"] = kind,
    version = "1.0",
    title = title,
    type = "object",
    description = description,
    ["$schema"] = SCHEMA,
    definitions = { [defname] = { properties = props, type = "object", ["meta:xdmType"] = "object" } },
    allOf = { { ["$ref"] = "#/definitions/" .. defname, type = "object", ["meta:xdmType"] = "object" } },
    ["meta:xdmType"] = "object",
    ["meta:containerId"] = "global",
    ["meta:status"] = "stable",
  }
  for k, v in pairs(extra or {}) do doc[k] = v end
  R[id] = doc
  order[#order + 1] = doc
  return doc
end

-- field helpers ---------------------------------------------------------------

local function merge(t, extra)
  for k, v in pairs(extra or {}) do t[k] = v end
  return t
end

local function str(title, description, extra)
  local f = { title = title, type = "string", description = description, ["meta:xdmType"] = "string" }
  merge(f, extra)
  if f.format == "date" then f["meta:xdmType"] = "date" end
  if f.format == "date-time" then f["meta:xdmType"] = "date-time" end
  return f
end

local function bool(title, description, extra)
  return merge({ title = title, type = "boolean", description = description, ["meta:xdmType"] = "boolean" }, extra)
end

local function int(title, description, xdm_type, min, max, extra)
  return merge({ title = title, type = "integer", description = description, ["meta:xdmType"] = xdm_type,
                 minimum = min, maximum = max }, extra)
end

local function num(title, description, extra)
  return merge({ title = title, type = "number", description = description, ["meta:xdmType"] = "number" }, extra)
end

local function ref(title, id, description)
  return { title = title, ["$ref"] = id, description = description, type = "object", ["meta:xdmType"] = "object" }
end

local function obj(title, description, props, extra)
  return merge({ title = title, type = "object", description = description, ["meta:xdmType"] = "object",
                 properties = props }, extra)
end

local INT_MIN, INT_MAX = -2147483648, 2147483647
local LONG_MIN, LONG_MAX = -9007199254740991, 9007199254740991

-- ---------------------------------------------------------------------------------------------
-- Behaviors

resource("behaviors", "https://ns.adobe.com/xdm/data/record", "Record Schema",
  "Used to indicate the behavior of record data semantic when composed into data schemas.", "record", {
    _id = str("Identifier", "A unique identifier for the record.", { format = "uri-reference" }),
  }, { ["meta:abstract"] = true })

resource("behaviors", "https://ns.adobe.com/xdm/data/time-series", "Time-series Schema",
  "Used to indicate the behavior of time partitioned semantics when composed into data schemas.", "time-series", {
    _id = str("Identifier", "A unique identifier for the time-series event.", { format = "uri-reference" }),
    timestamp = str("Timestamp", "The time when an event or observation occurred.", { format = "date-time" }),
  }, { ["meta:abstract"] = true })

-- ad hoc: the behavior of schemas whose fields all sit under one namespace (no common fields)
resource("behaviors", "https://ns.adobe.com/xdm/data/adhoc", "Ad Hoc Schema",
  "Used to indicate the behavior of ad hoc data semantic when composed into data schemas.", "adhoc", {},
  { ["meta:abstract"] = true })

-- ---------------------------------------------------------------------------------------------
-- Data types

resource("datatypes", "https://ns.adobe.com/xdm/common/auditable", "Audit trail",
  "The audit trail schema indicates a data record is auditable. For example, who and when the record was last modified.",
  "auditlog", {
    repositoryCreatedBy = str("Created by user identifier", "User ID of who created the record."),
    repositoryLastModifiedBy = str("Modified by user identifier",
      "User ID of who last modified the record. At creation time, `modifiedByUser` is set as `createdByUser`."),
    createdByBatchID = str("Created by batch identifier",
      "The dataset files in Catalog which has been originating the creation of the record.", { format = "uri-reference" }),
    modifiedByBatchID = str("Modified by batch identifier",
      "The last dataset files in Catalog which has modified the record. At creation time, `modifiedByBatchID` is set as `createdByBatchID`.",
      { format = "uri-reference" }),
    _repo = obj("Repository", "Repository-managed dates.", {
      createDate = str("Create date", "The server date and time when the resource was created in the repository.",
        { format = "date-time", ["meta:usereditable"] = false }),
      modifyDate = str("Modify date", "The server date and time when the resource was last modified in the repository.",
        { format = "date-time", ["meta:usereditable"] = false }),
    }),
  }, { ["meta:abstract"] = true })

resource("datatypes", "https://ns.adobe.com/xdm/context/person-name", "Person name", "Full name of a person.",
  "personname", {
    firstName = str("First name",
      "The first segment of the name in the writing order most commonly accepted in the language of the name. In many cultures this is the preferred personal or given name."),
    lastName = str("Last name",
      "The last segment of the name in the writing order most commonly accepted in the language of the name. In many cultures this is the inherited family name, surname, patronymic, or matronymic name."),
    middleName = str("Middle name",
      "Middle, alternative, or additional names supplied between the first name and last name."),
    courtesyTitle = str("Courtesy title",
      "Normally an abbreviation of a persons title, honorific, or salutation. The `courtesyTitle` is used in front of full or last name in opening texts. For example, Mr. Miss. or Dr."),
    suffix = str("Suffix",
      "A group of letters provided after a person's name to provide additional information. The `suffix` is used at the end of someones name. For example Jr., Sr., M.D., PhD, I, II, III, etc."),
    fullName = str("Full name",
      "The full name of the person, in writing order most commonly accepted in the language of the name."),
  }, { ["meta:extensible"] = true })

resource("datatypes", "https://ns.adobe.com/xdm/context/person", "Person",
  "An individual person. May represent a person acting in various roles, such as a customer, contact, or owner.",
  "person", {
    name = ref("Full name", "https://ns.adobe.com/xdm/context/person-name", "The person's full name."),
    birthDate = str("Birth date", "The full date a person was born.", { format = "date" }),
    birthDayAndMonth = str("Birth date (MM-DD Format)",
      "The day and month a person was born, in the format MM-DD. This field should be used when the day and month of a person's birth is known, but not the year.",
      { pattern = "[0-1][0-9]-[0-9][0-9]" }),
    birthYear = int("Birth year",
      "The year a person was born including the century, for example, 1983.  This field should be used when only the person's age is known, not the full birth date.",
      "short", 1, 32767),
    gender = str("Gender", "Gender identity of the person.\n", {
      enum = { "male", "female", "not_specified", "non_specific" },
      ["meta:enum"] = { male = "Male", female = "Female", not_specified = "Not Specified", non_specific = "Non-specific" },
      default = "not_specified" }),
    maritalStatus = str("Marital Status", "Describes a person's relationship with a significant other.", {
      enum = { "married", "single", "divorced", "widowed", "not_specified" },
      ["meta:enum"] = { married = "Married", single = "Single", divorced = "Divorced", widowed = "Widowed",
                        not_specified = "Not Specified" },
      default = "not_specified" }),
    nationality = str("Nationality",
      "The legal relationship between a person and their state represented using the ISO 3166-1 Alpha-2 code.",
      { pattern = "^[A-Z]{2}$" }),
    taxId = str("Tax ID", "The Tax / Fiscal ID of the person, e.g. the TIN in the US or the CIF/NIF in Spain."),
  }, { ["meta:extensible"] = true, ["meta:extends"] = { "https://ns.adobe.com/xdm/context/person-name" } })

resource("datatypes", "https://ns.adobe.com/xdm/context/emailaddress", "Email address", "A standard email address.",
  "emailaddress", {
    primary = bool("Primary",
      "Primary email indicator. A profile can have only one `primary` email address at a given point of time."),
    address = str("Address",
      "The technical address, for example, 'name@domain.com' as commonly defined in RFC2822 and subsequent standards.",
      { format = "email" }),
    label = str("Label",
      "Additional display information that maybe available, for example, Microsoft Outlook rich address controls display 'John Smith smithjr@company.uk', 'John Smith' part is data that would be placed in the label."),
    type = str("Type", "The way the account relates to the person for example 'work' or 'personal'.", {
      ["meta:enum"] = { unknown = "Unknown", personal = "Personal", work = "Work", education = "Education" } }),
    status = str("Status", "An indication as to the ability to use the email address.", {
      default = "active",
      ["meta:enum"] = { active = "Active", incomplete = "Incomplete", pending_verification = "Pending verification",
                        blacklisted = "Blacklisted", blocked = "Blocked" } }),
    statusReason = str("Status reason", "A description of the current status."),
  }, { ["meta:extensible"] = true })

resource("datatypes", "https://ns.adobe.com/xdm/context/phonenumber", "Phone number",
  "Information that enables the contact of a person with a phone. Typically an alphanumeric number, 1-222-333-4444 in North America, but can have a wide range of formats.",
  "phonenumber", {
    primary = bool("Primary", "Primary phone number indicator."),
    number = str("Number",
      "The phone number. Note the phone number is a string and may include meaningful characters such as brackets '()', hyphens '-', or characters to indicate sub-dialing identifiers like extensions 'x' for example,  1-353(0)18391111 or +613 9403600x1234."),
    extension = str("Extension", "The internal dialing number used to call from a private exchange, operator, or switchboard."),
    status = str("Status", "An indication as to the ability to use the phone number.", {
      default = "active",
      ["meta:enum"] = { active = "Active", incomplete = "Incomplete", blacklisted = "Blacklisted", blocked = "Blocked" } }),
    statusReason = str("Status reason", "A description of the current status."),
    validity = str("Validity", "A level of technical correctness of the phone number.", {
      ["meta:enum"] = { consistent = "Consistent", inconsistent = "Inconsistent", incomplete = "Incomplete",
                        successfullyUsed = "Successfully used" } }),
  }, { ["meta:extensible"] = true })

resource("datatypes", "https://ns.adobe.com/xdm/common/address", "Postal address",
  "A postal address. Address could relate to a person's home, work, or preferred store location.", "address", {
    primary = bool("Primary",
      "Primary address indicator. A profile can have only one `primary` address at a given point of time."),
    label = str("Label", "Free form name of the address."),
    street1 = str("Street 1", "Primary street level information, apartment number, street number, and street name."),
    street2 = str("Street 2", "Optional street information second line."),
    street3 = str("Street 3", "Optional street information third line."),
    street4 = str("Street 4", "Optional street information fourth line."),
    city = str("City", "The name of the city."),
    stateProvince = str("State or province",
      "The state, or province portion of the observation. The format follows the [ISO 3166-2 (country and subdivision)][http://www.unece.org/cefact/locode/subdivisions.html] standard.",
      { pattern = "([A-Z]{2}-[A-Z0-9]{1,3}|)" }),
    postalCode = str("Postal code",
      "The postal code of the location. Postal codes are not available for all countries. In some countries, this will only contain part of the postal code."),
    countryCode = str("Country code", "The two-character [ISO 3166-1 alpha-2](https://datahub.io/core/country-list) code for the country.",
      { pattern = "^[A-Z]{2}$" }),
    country = str("Country",
      "The name of the government-administered territory. Other than `xdm:countryCode`, this is a free-form field that can have the country name in any language."),
    region = str("Region", "The region, county, or district portion of the address."),
    postOfficeBox = str("Post office box", "Post office box of the address.", { maxLength = 20 }),
    dmaID = int("Designated market area",
      "The Nielsen media research designated market area.", "int", INT_MIN, INT_MAX),
    status = str("Status", "An indication as to the ability to use the address.", {
      default = "active",
      ["meta:enum"] = { active = "Active", incomplete = "Incomplete", pending_verification = "Pending verification",
                        blacklisted = "Blacklisted", blocked = "Blocked" } }),
    statusReason = str("Status reason", "A description of the current status."),
    lastVerifiedDate = str("Last verified date",
      "The date that the address was last verified as still associated to the person.", { format = "date" }),
    _schema = obj("Schema.org", "Properties from schema.org (GeoCoordinates).", {
      latitude = num("Latitude", "The signed vertical coordinate of a geographic point.", { minimum = -90, maximum = 90 }),
      longitude = num("Longitude", "The signed horizontal coordinate of a geographic point.", { minimum = -180, maximum = 180 }),
      elevation = num("Elevation",
        "The specific elevation of the defined coordinate. The value conforms to the [WGS84](http://gisgeography.com/wgs84-world-geodetic-system/) datum and is measured in meters."),
      description = str("Description", "A description of the coordinates."),
    }),
  }, { ["meta:extensible"] = true })

resource("datatypes", "https://ns.adobe.com/xdm/context/identityitem", "Identity item",
  "An end user identity item, to be included in an instance of `context/identitymap`.", "identityitem", {
    id = str("Identifier", "Identity of the consumer in the related namespace."),
    authenticatedState = str("Authenticated state",
      "The state this identity is authenticated as for this observed ExperienceEvent.", {
      default = "ambiguous",
      enum = { "ambiguous", "authenticated", "loggedOut" },
      ["meta:enum"] = {
        ambiguous = "Ambiguous",
        authenticated = "User identified by a login or similar action that was valid at the time of the event observation.",
        loggedOut = "User was identified by a login action at some point of time previously, but is not currently logged in.",
      } }),
    primary = bool("Primary",
      "Indicates this identity is the preferred identity. Is used as a hint to help systems better organize how identities are queried.",
      { default = false }),
  }, { ["meta:extensible"] = true })

resource("datatypes", "https://ns.adobe.com/xdm/context/browserdetails", "Browser details",
  "The browser specific details such as user agent, JavaScript version, and browser window size.",
  "browserdetails", {
    userAgent = str("User agent", "The browser's user agent string."),
    acceptLanguage = str("Accept language", "The browser's preferred languages."),
    cookiesEnabled = bool("Cookies enabled", "Whether the browser accepts cookies."),
    javaScriptEnabled = bool("JavaScript enabled", "Whether JavaScript is enabled."),
    javaScriptVersion = str("JavaScript version", "The JavaScript version the browser supports."),
    javaEnabled = bool("Java enabled", "Whether Java is enabled."),
    javaVersion = str("Java version", "The Java version the browser supports."),
    thirdPartyCookiesEnabled = bool("Third-party cookies enabled", "Whether third-party cookies are enabled."),
    viewportHeight = int("Viewport height",
      "The vertical size in pixels of the browser's window the experience was displayed inside.", "int", 0, INT_MAX),
    viewportWidth = int("Viewport width",
      "The horizontal size in pixels of the browser's window the experience was displayed inside.", "int", 0, INT_MAX),
  }, { ["meta:extensible"] = true })

resource("datatypes", "https://ns.adobe.com/xdm/context/environment", "Environment",
  "Information about the surrounding situation the event observation occurred, specifically detailing transitory information such as the network or software versions.",
  "environment", {
    type = str("Type", "The type of the application environment.", {
      enum = { "browser", "application", "iot", "external", "widget" },
      ["meta:enum"] = { browser = "Browser", application = "Application", iot = "Internet of things",
                        external = "External system", widget = "Application extension" } }),
    operatingSystem = str("Operating system", "The name of the operating system used when the observation was made."),
    operatingSystemVersion = str("Operating system version",
      "The full version identifier for the operating system used when the observation was made."),
    operatingSystemVendor = str("Operating system vendor",
      "The name of the operating system vendor used when the observation was made."),
    colorDepth = int("Color depth", "The number of bits used for each color component of a single pixel.", "int", 0, INT_MAX),
    viewportHeight = int("Viewport height",
      "The vertical size in pixels of the window the experience was displayed inside.", "int", 0, INT_MAX),
    viewportWidth = int("Viewport width",
      "The horizontal size in pixels of the window the experience was displayed inside.", "int", 0, INT_MAX),
    connectionType = str("Connection type", "Internet connection type.", {
      enum = { "dialup", "isdn", "bisdn", "dsl", "cable", "wireless_wifi", "mobile", "mobile_edge", "mobile_2g",
               "mobile_3g", "mobile_lte", "t1", "t3", "oc3", "lan", "modem" } }),
    carrier = str("Mobile network carrier", "A mobile network carrier or MNO."),
    browserDetails = ref("Browser details", "https://ns.adobe.com/xdm/context/browserdetails",
      "The browser specific details such as user agent, JavaScript version, and browser window size."),
    ipV4 = str("IPv4", "The numerical label assigned to a device participating in a computer network.", { format = "ipv4" }),
    ipV6 = str("IPv6", "The numerical label assigned to a device participating in a computer network.", { format = "ipv6" }),
    domain = str("Domain", "The domain of the users ISP."),
    ISP = str("Internet service provider", "The name of the user's internet service provider."),
    _dc = obj("Dublin Core", "Dublin Core properties.", {
      language = str("Language",
        "The language of the environment to represent the user's linguistic, geographical, or cultural preferences for data presentation.",
        { pattern = "^(((([A-Za-z]{2,3}(-([A-Za-z]{3}(-[A-Za-z]{3}){0,2}))?)|[A-Za-z]{4}|[A-Za-z]{5,8})(-([A-Za-z]{4}))?(-([A-Za-z]{2}|[0-9]{3}))?(-([A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*(-([0-9A-WY-Za-wy-z](-[A-Za-z0-9]{2,8})+))*(-(x(-[A-Za-z0-9]{1,8})+))?)|(x(-[A-Za-z0-9]{1,8})+)|((en-GB-oed|i-ami|i-bnn|i-default|i-enochian|i-hak|i-klingon|i-lux|i-mingo|i-navajo|i-pwn|i-tao|i-tay|i-tsu|sgn-BE-FR|sgn-BE-NL|sgn-CH-DE)|(art-lojban|cel-gaulish|no-bok|no-nyn|zh-guoyu|zh-hakka|zh-min|zh-min-nan|zh-xiang)))$",
          ["meta:usereditable"] = false }),
    }),
  }, { ["meta:extensible"] = true, ["meta:extends"] = { "https://ns.adobe.com/xdm/context/browserdetails" } })

resource("datatypes", "https://ns.adobe.com/xdm/context/device", "Device",
  "An identified device, application or device browser instance that is trackable across sessions, normally by cookies.",
  "device", {
    typeIDService = str("Type ID service", "The namespace of the service that is used to identify the device.",
      { format = "uri-reference" }),
    typeID = str("Type ID", "An identifier for the device."),
    type = str("Type", "Type of device being tracked.", {
      ["meta:enum"] = { mobile = "Mobile", tablet = "Tablet", desktop = "Desktop", ereader = "E-reader",
                        gaming = "Gaming", television = "Television", settop = "Set-top", mediaplayer = "Media player",
                        computers = "Computers", tv_screens = "TV screens" } }),
    manufacturer = str("Manufacturer", "The name of the organization who owns the design and creation of the device."),
    model = str("Model", "The name of the model for the device."),
    modelNumber = str("Model number", "The unique model number designation assigned by the manufacturer for this device."),
    screenHeight = int("Screen height", "The number of vertical pixels of the device's active display in the default orientation.",
      "long", LONG_MIN, LONG_MAX),
    screenWidth = int("Screen width", "The number of horizontal pixels of the device's active display in the default orientation.",
      "long", LONG_MIN, LONG_MAX),
    screenOrientation = str("Screen orientation", "The current screen orientation.", {
      enum = { "portrait", "landscape" }, ["meta:enum"] = { portrait = "Portrait", landscape = "Landscape" } }),
    colorDepth = int("Color depth", "The number of colors the display is able to represent.", "long", LONG_MIN, LONG_MAX),
  }, { ["meta:extensible"] = true })

resource("datatypes", "https://ns.adobe.com/xdm/context/placecontext", "Place context",
  "The transient circumstances related to the observation.", "placecontext", {
    localTime = str("Local time", "The precise time when an observation was made in the user's local time.",
      { format = "date-time" }),
    localTimezoneOffset = int("Local timezone offset",
      "The offset of the local timezone, in minutes, from UTC.", "int", -720, 840),
    ianaTimezone = str("IANA timezone", "The name of the time zone in the IANA time zone database."),
  }, { ["meta:extensible"] = true })

-- ---------------------------------------------------------------------------------------------
-- Field groups ("mixins")

local PROFILE = "https://ns.adobe.com/xdm/context/profile"
local EVENT = "https://ns.adobe.com/xdm/context/experienceevent"

resource("mixins", "https://ns.adobe.com/xdm/context/identitymap", "Identity Map",
  "Defines a map containing a set of end user identities, keyed on either namespace integration code or the namespace ID of the identity. The values of the map are an array, meaning that more than one identity of each namespace may be carried.",
  "identitymap", {
    identityMap = {
      title = "Identity map",
      type = "object",
      ["meta:xdmType"] = "map",
      description = "Map of end user identities, keyed by identity namespace code.",
      additionalProperties = {
        type = "array",
        ["meta:xdmType"] = "array",
        items = { ["$ref"] = "https://ns.adobe.com/xdm/context/identityitem", type = "object", ["meta:xdmType"] = "object" },
      },
    },
  }, { ["meta:extensible"] = true, ["meta:abstract"] = true, ["meta:intendedToExtend"] = { PROFILE },
       ["meta:extends"] = { "https://ns.adobe.com/xdm/context/identityitem" } })

resource("mixins", "https://ns.adobe.com/xdm/context/profile-person-details", "Demographic Details",
  "Demographic information such as name, gender, and birth date of an individual.",
  "profile-person-details", {
    person = ref("Person", "https://ns.adobe.com/xdm/context/person", "An individual actor, contact, or owner."),
  }, { ["meta:extensible"] = true, ["meta:abstract"] = true, ["meta:intendedToExtend"] = { PROFILE },
       ["meta:extends"] = { "https://ns.adobe.com/xdm/context/person", "https://ns.adobe.com/xdm/context/person-name" },
       ["meta:tags"] = { industry = { "all" } } })

resource("mixins", "https://ns.adobe.com/xdm/context/profile-personal-details", "Personal Contact Details",
  "Contact information for an individual person such as home address, phone number, fax, and email.",
  "profile-personal-details", {
    homeAddress = ref("Home address", "https://ns.adobe.com/xdm/common/address", "A home postal address."),
    personalEmail = ref("Personal email", "https://ns.adobe.com/xdm/context/emailaddress", "A personal email address."),
    homePhone = ref("Home phone", "https://ns.adobe.com/xdm/context/phonenumber", "Home phone number."),
    mobilePhone = ref("Mobile phone", "https://ns.adobe.com/xdm/context/phonenumber", "Mobile phone number."),
    faxPhone = ref("Fax phone", "https://ns.adobe.com/xdm/context/phonenumber", "Fax phone number."),
  }, { ["meta:extensible"] = true, ["meta:abstract"] = true, ["meta:intendedToExtend"] = { PROFILE },
       ["meta:extends"] = { "https://ns.adobe.com/xdm/common/address", "https://ns.adobe.com/xdm/context/emailaddress",
                            "https://ns.adobe.com/xdm/context/phonenumber" },
       ["meta:tags"] = { industry = { "all" } } })

resource("mixins", "https://ns.adobe.com/xdm/context/profile-work-details", "Work Contact Details",
  "Work-related details of a person such as work address, work email, work phone number, and organizations to which the person belongs.",
  "profile-work-details", {
    workAddress = ref("Work Address", "https://ns.adobe.com/xdm/common/address", "A work postal address."),
    workEmail = ref("Work Email", "https://ns.adobe.com/xdm/context/emailaddress", "A work email address."),
    workPhone = ref("Work Phone", "https://ns.adobe.com/xdm/context/phonenumber", "Work phone number."),
    organizations = { title = "Organizations", type = "array", ["meta:xdmType"] = "array",
                      description = "Organizations to which the person belongs.",
                      items = { type = "string", ["meta:xdmType"] = "string" } },
  }, { ["meta:extensible"] = true, ["meta:abstract"] = true, ["meta:intendedToExtend"] = { PROFILE },
       ["meta:extends"] = { "https://ns.adobe.com/xdm/common/address", "https://ns.adobe.com/xdm/context/emailaddress",
                            "https://ns.adobe.com/xdm/context/phonenumber" },
       ["meta:tags"] = { industry = { "all" } } })

resource("mixins", "https://ns.adobe.com/xdm/context/experienceevent-environment-details", "Environment Details",
  "Captures information regarding environment details related to an ExperienceEvent, such as device details, browser information, local time, and other geographical information.",
  "experienceevent-environment-details", {
    environment = ref("Environment", "https://ns.adobe.com/xdm/context/environment",
      "Information about the surrounding situation the event observation occurred in, specifically detailing transitory information such as the network or software versions."),
    device = ref("Device", "https://ns.adobe.com/xdm/context/device",
      "An identified device, application or device browser instance that is trackable across sessions, normally by cookies."),
    placeContext = ref("Place context", "https://ns.adobe.com/xdm/context/placecontext",
      "The transient circumstances related to the observation. Examples include locale specific information such as weather, local time, traffic, day of the week, workday vs. holiday, and working hours."),
  }, { ["meta:extensible"] = true, ["meta:abstract"] = true, ["meta:intendedToExtend"] = { EVENT },
       ["meta:extends"] = { "https://ns.adobe.com/xdm/context/environment", "https://ns.adobe.com/xdm/context/device",
                            "https://ns.adobe.com/xdm/context/placecontext" } })

-- What the Web SDK (alloy) fills by itself: web.webPageDetails.URL, web.webReferrer.URL (its "web"
-- context) and implementationDetails (always), after adobe/xdm's webinfo and implementationdetails.
resource("datatypes", "https://ns.adobe.com/xdm/context/webpagedetails", "Web page details",
  "Details about the web page where the experience event occurred.", "webpagedetails", {
    URL = str("URL", "The URL of the web page.", { format = "uri-reference" }),
    name = str("Name", "The normative name of the web page."),
    siteSection = str("Site section", "The section of the site the page belongs to."),
    server = str("Server", "The name of the server that served the page."),
    viewName = str("View name", "The view name of a single-page application."),
    isErrorPage = bool("Is error page", "Whether the page is an error page."),
    isHomePage = bool("Is home page", "Whether the page is the site's home page."),
    pageViews = obj("Page views", "A view of the web page.", {
      value = num("Value", "The quantifiable value of the measure."),
      id = str("ID", "A unique identifier of the measure."),
    }),
  }, { ["meta:extensible"] = true })

resource("datatypes", "https://ns.adobe.com/xdm/context/webreferrer", "Web referrer",
  "The referrer of the web page.", "webreferrer", {
    URL = str("URL", "The referrer URL.", { format = "uri-reference" }),
    type = str("Type", "The type of referrer.", {
      ["meta:enum"] = { internal = "Internal", external = "External", search_engine = "Search engine",
                        email = "E-mail", social = "Social network", typed_bookmarked = "Typed or bookmarked",
                        unknown = "Unknown" } }),
  }, { ["meta:extensible"] = true })

resource("datatypes", "https://ns.adobe.com/xdm/context/webinfo", "Web information",
  "Web information of the experience event: the page, the referrer and the interaction.", "webinfo", {
    webPageDetails = ref("Web page details", "https://ns.adobe.com/xdm/context/webpagedetails",
      "Details about the web page where the experience event occurred."),
    webReferrer = ref("Web referrer", "https://ns.adobe.com/xdm/context/webreferrer", "The referrer of the web page."),
    webInteraction = obj("Web interaction", "Details of a link click.", {
      name = str("Name", "The name of the link."),
      URL = str("URL", "The URL of the link.", { format = "uri-reference" }),
      type = str("Type", "The type of the link.", { enum = { "download", "exit", "other" } }),
      region = str("Region", "The region of the page the link is in."),
      linkClicks = obj("Link clicks", "A click on the link.", {
        value = num("Value", "The quantifiable value of the measure."),
        id = str("ID", "A unique identifier of the measure."),
      }),
    }),
  }, { ["meta:extensible"] = true, ["meta:extends"] = { "https://ns.adobe.com/xdm/context/webpagedetails",
                                                        "https://ns.adobe.com/xdm/context/webreferrer" } })

resource("datatypes", "https://ns.adobe.com/xdm/common/implementationdetails", "Implementation details",
  "Details about the software that collected the data.", "implementationdetails", {
    name = str("Name", "The identifier of the SDK or endpoint, e.g. https://ns.adobe.com/experience/alloy.",
      { format = "uri-reference" }),
    version = str("Version", "The version of the SDK or endpoint."),
    environment = str("Environment", "The environment of the implementation.", {
      enum = { "browser", "app", "server", "iot" } }),
  }, { ["meta:extensible"] = true })

resource("mixins", "https://ns.adobe.com/xdm/context/experienceevent-web", "Web Details",
  "Captures information about web page views, link clicks and the referrer of an ExperienceEvent.",
  "experienceevent-web", {
    web = ref("Web", "https://ns.adobe.com/xdm/context/webinfo", "Web information of the experience event."),
  }, { ["meta:extensible"] = true, ["meta:abstract"] = true, ["meta:intendedToExtend"] = { EVENT },
       ["meta:extends"] = { "https://ns.adobe.com/xdm/context/webinfo" } })

resource("mixins", "https://ns.adobe.com/xdm/context/experienceevent-implementationdetails", "Implementation Details",
  "Captures the SDK that collected an ExperienceEvent.", "experienceevent-implementationdetails", {
    implementationDetails = ref("Implementation details", "https://ns.adobe.com/xdm/common/implementationdetails",
      "Details about the software that collected the data."),
  }, { ["meta:extensible"] = true, ["meta:abstract"] = true, ["meta:intendedToExtend"] = { EVENT },
       ["meta:extends"] = { "https://ns.adobe.com/xdm/common/implementationdetails" } })

-- Consent: the "Consent and Preference Details" field group and its data type (standard_consents)
require("aep.xdm.standard_consents") { resource = resource, str = str, obj = obj, PROFILE = PROFILE }

-- ---------------------------------------------------------------------------------------------
-- Classes

do
  local doc = resource("classes", PROFILE, "XDM Individual Profile",
    "An XDM Individual Profile forms a singular representation of the attributes and interests of both identified and partially-identified individuals. Less-identified profiles may contain only anonymous behavioral signals, such as browser cookies, while highly-identified profiles may contain detailed personal information such as name, date of birth, location, and email address. As a profile grows, it becomes a robust repository of personal information, identification information, contact details, and communication preferences for an individual.",
    "profile", {
      personID = str("Person ID", "Unique identifier of Person/Profile fragment."),
    }, { ["meta:extensible"] = true, ["meta:abstract"] = true,
         -- as served in 2019-2020 (the collection's time): the class brought identityMap, which
         -- is what let a union schema be created before its primary identity descriptor (R8, R9)
         ["meta:extends"] = { "https://ns.adobe.com/xdm/data/record", "https://ns.adobe.com/xdm/context/identitymap",
                              "https://ns.adobe.com/xdm/common/auditable" } })
  table.insert(doc.allOf, 1, { ["$ref"] = "https://ns.adobe.com/xdm/context/identitymap" })
  table.insert(doc.allOf, 1, { ["$ref"] = "https://ns.adobe.com/xdm/data/record" })
  table.insert(doc.allOf, 1, { ["$ref"] = "https://ns.adobe.com/xdm/common/auditable" })
end

do
  local doc = resource("classes", EVENT, "XDM ExperienceEvent",
    "An ExperienceEvent is a fact record of what occurred, including the point in time and identity of the individual involved. ExperienceEvents can be either explicit (directly observable human actions) or implicit (raised without a direct human action) and are recorded without aggregation or interpretation. They are critical for time-domain analytics as they allow for observation and analysis of changes that occur in a given window of time and the comparison between multiple windows of time to track trends.",
    "experienceevent", {
      eventMergeId = str("ExperienceEvent merge ID",
        "An ID to correlate or merge multiple Experience events together that are essentially the same event or should be merged. This is intended to be populated by the data producer prior to ingestion."),
      eventType = str("Event Type", "The primary event type for this time-series record.", {
        ["meta:enum"] = {
          ["advertising.completes"] = "Advertising Completes",
          ["advertising.clicks"] = "Advertising Clicks",
          ["advertising.impressions"] = "Advertising Impressions",
          ["web.webpagedetails.pageViews"] = "Web Webpagedetails Page Views",
          ["web.webinteraction.linkClicks"] = "Web Webinteraction Link Clicks",
          ["commerce.checkouts"] = "Commerce Checkouts",
          ["commerce.productListAdds"] = "Commerce Product List Adds",
          ["commerce.productViews"] = "Commerce Product Views",
          ["commerce.purchases"] = "Commerce Purchases",
          ["delivery.feedback"] = "Delivery Feedback",
          ["message.feedback"] = "Message Feedback",
          ["message.tracking"] = "Message Tracking",
          ["pushTracking.applicationOpened"] = "Push Tracking Application Opened",
          ["pushTracking.customAction"] = "Push Tracking Custom Action",
          ["directMarketing.emailOpened"] = "Direct Marketing Email Opened",
          ["directMarketing.emailClicked"] = "Direct Marketing Email Clicked",
        } }),
    }, { ["meta:extensible"] = true, ["meta:abstract"] = true,
         ["meta:extends"] = { "https://ns.adobe.com/xdm/data/time-series", "https://ns.adobe.com/xdm/context/identitymap",
                              "https://ns.adobe.com/xdm/context/identityitem" },
         required = { "_id", "timestamp" } })
  table.insert(doc.allOf, 1, { ["$ref"] = "https://ns.adobe.com/xdm/data/time-series" })
  table.insert(doc.allOf, 1, { ["$ref"] = "https://ns.adobe.com/xdm/context/identitymap" })
end

-- adobe/xdm's own files open with allOf [{"$ref": ".../extensible#/definitions/@context"}]; the
-- registry never shows it. Resolvable (it contributes nothing), but not listed.
R["https://ns.adobe.com/xdm/common/extensible"] = {
  ["$id"] = "https://ns.adobe.com/xdm/common/extensible",
  ["meta:altId"] = "_xdm.common.extensible",
  ["meta:resourceType"] = "behaviors",
  version = "1.0",
  title = "Extensible",
  type = "object",
  definitions = { ["@context"] = {} },
  ["meta:containerId"] = "global",
}

-- ---------------------------------------------------------------------------------------------

local KINDS = { classes = true, mixins = true, datatypes = true, behaviors = true }

local helpers = {}

-- standard.all() -> array of classes, field groups and data types (behaviors are only referenced)
function helpers.all()
  local out = {}
  for _, doc in ipairs(order) do
    if doc["meta:resourceType"] ~= "behaviors" then out[#out + 1] = doc end
  end
  table.sort(out, function(a, b) return a["$id"] < b["$id"] end)
  return out
end

-- standard.list(kind) -> array of the resources of one meta:resourceType, sorted by $id
function helpers.list(kind)
  if kind == "fieldgroups" then kind = "mixins" end
  assert(KINDS[kind], "standard.list: unknown kind " .. tostring(kind))
  local out = {}
  for _, doc in ipairs(order) do
    if doc["meta:resourceType"] == kind then out[#out + 1] = doc end
  end
  table.sort(out, function(a, b) return a["$id"] < b["$id"] end)
  return out
end

return setmetatable(R, { __index = helpers })
