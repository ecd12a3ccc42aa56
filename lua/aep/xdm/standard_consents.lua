-- aep.xdm.standard_consents: Adobe's standard consent resources, in the registry's shape (see
-- aep.xdm.standard, which calls this with its builders: no require back, so no cycle).
--   https://ns.adobe.com/xdm/datatypes/consents-and-preferences  data type "Consent for Privacy,
--     Personalization and Marketing Preferences" (adobe/xdm components/datatypes/consent/
--     consent-preferences.schema.json: its definition consent-preferences)
--   https://ns.adobe.com/xdm/mixins/profile-consents             field group "Consent and Preference
--     Details" (components/fieldgroups/profile/profile-consents.schema.json: the data type's
--     definition profile-consents), the fields the Edge Network writes a setConsent's Adobe 2.0
--     value to (help/landing/governance-privacy-security/consent/adobe/dataset.md)
-- The XDM files share their shapes through local definitions (choice-value, consent-field,
-- marketing-field...); the registry serves them inlined, as built here, with the "xdm:" prefixes
-- dropped. The two `consents` differ as in XDM: the data type's has adID at the top and marketing
-- without subscriptions; the field group's has adID only per identity (idSpecific) and marketing
-- channels with subscriptions.

local DATATYPE = "https://ns.adobe.com/xdm/datatypes/consents-and-preferences"
local FIELDGROUP = "https://ns.adobe.com/xdm/mixins/profile-consents"

-- install(b): b holds standard.lua's builders: resource, str, obj, PROFILE
return function(b)
  local str, obj = b.str, b.obj

  local function choice_value(description)
    return str("Choice Value", description or
      "The value specified by the user as their preference or the basis of processing that precludes the need for user consent", {
      enum = { "y", "n", "p", "u", "dy", "dn", "LI", "CT", "CP", "VI", "PI" },
      ["meta:enum"] = { y = "Yes (opt-in)", n = "No (opt-out)", p = "Pending verification", u = "Unknown",
                        dy = "Default of Yes (opt-in)", dn = "Default of No (opt-out)", LI = "Legitimate Interest",
                        CT = "Contract", CP = "Compliance with a Legal Obligation",
                        VI = "Vital Interest of the Individual", PI = "Public Interest" } })
  end

  local function timestamp()
    return str("Preference timestamp",
      "Date and time this specific preference was collected. This value should conform to ISO 8601 standard. An example form is \"2004-10-23T12:00:00-06:00\".",
      { format = "date-time" })
  end

  -- consent-field: {val} (required)
  local function consent_field(title, description)
    return obj(title, description, {
      val = choice_value(
        "The value specified by the user as their consent choice or the basis of processing that precludes the need for user consent"),
    }, { required = { "val" } })
  end

  local function personalize()
    return obj("Personalization Preferences", "User's Personalization Preferences", {
      content = obj("Personalize Content", "Allow personalization of the content on my site or in my apps",
        { val = choice_value() }, { required = { "val" } }),
    })
  end

  -- marketing-field: {val (required), time, reason}; with subscriptions: a map of them
  local function marketing_field(title, description, with_subscriptions)
    local props = {
      val = choice_value(),
      time = timestamp(),
      reason = str("Opt-out reason", "Reason for opting out", { maxLength = 16 }),
    }
    if with_subscriptions then
      props.subscriptions = obj("Subscriptions", "A set of notifications, newsletters, etc. to which the user subscribes",
        nil, { ["meta:xdmType"] = "map", additionalProperties = obj("Subscription",
          "The name or identifier of the specific subscription", {
            val = choice_value(),
            type = str("Subscription Type", "The type of subscription", { maxLength = 15 }),
            subscribers = obj("Subscribers",
              "The set of identifiers (email addresses, phone numbers, etc.) for this user who have subscribed", nil,
              { ["meta:xdmType"] = "map", additionalProperties = obj("Subscriber",
                "The specific identifier (email addresses, phone numbers, etc.) for this subscriber", {
                  time = timestamp(),
                  source = str("Preference Source", "Through which interface did the user provide this preference value",
                    { maxLength = 15 }),
                }) }),
          }) })
    end
    return obj(title, description, props, { required = { "val" } })
  end

  local PREFERRED = { "email", "push", "inApp", "sms", "phone", "phyMail", "inVehicle", "inHome", "iot", "social",
                      "other", "none", "unknown" }
  local PREFERRED_TITLES = { email = "email", push = "Push Notifications", inApp = "In-app Messages",
    sms = "SMS (Text Messages)", phone = "Phone Calls", phyMail = "Physical Mail", inVehicle = "In-vehicle Messages",
    inHome = "In-home Messages", iot = "IoT Messages", social = "Social Media", other = "Other",
    none = "No Preferred Channel", unknown = "Unknown" }

  -- base-marketing (kind "base"), base-marketing-with-subscriptions ("subscriptions"),
  -- idSpecific-marketing ("id": channels only)
  local function marketing(kind)
    local subs = kind == "subscriptions"
    local props = {
      email = marketing_field("Receive email", "User agrees to receive email", subs),
      push = marketing_field("Receive push notifications", "User permits receiving push notifications", subs),
      sms = marketing_field("Receive SMS", "User agrees to receive text messages", subs),
    }
    if kind ~= "id" then
      props.preferred = str("Preferred Channel", "User's preferred channel for receiving communications",
        { enum = PREFERRED, ["meta:enum"] = PREFERRED_TITLES })
      props.any = marketing_field("General Direct Marketing Preference", "Does user permit any type of direct marketing")
    end
    return obj("Marketing Preferences", "User's Direct Marketing Preferences", props)
  end

  local function metadata()
    return obj("Consent and Preference Metadata",
      "Metadata that applies to all consents and preferences that don't specify a different value", {
        time = str("Consent/Preferences timestamp",
          "Timestamp of this complete set of user consents and preferences. This value should conform to ISO 8601 standard. An example form is \"2004-10-23T12:00:00-06:00\".",
          { format = "date-time" }),
      })
  end

  local COLLECT = { "Data Collection", "Data collection is permitted" }
  local SHARE = { "Share Data", "Sharing of user's data with 2nd or 3rd parties is permitted" }
  local ADID = { "Use Advertiser ID", "The Advertiser ID (IDFA / AAID) can be used to link user across apps on this device" }

  b.resource("datatypes", DATATYPE, "Consent for Privacy, Personalization and Marketing Preferences",
    "Captures consumer consent for collection and use of data related to privacy, personalization and marketing preferences.",
    "consent-preferences", {
      consents = obj("Consents and Preferences", "Specific Consent and Preference Options", {
        collect = consent_field(COLLECT[1], COLLECT[2]),
        share = consent_field(SHARE[1], SHARE[2]),
        adID = consent_field(ADID[1], ADID[2]),
        personalize = personalize(),
        marketing = marketing("base"),
        metadata = metadata(),
      }),
    }, { ["meta:extensible"] = true, ["meta:abstract"] = true })

  b.resource("mixins", FIELDGROUP, "Consent and Preference Details",
    "This schema captures privacy, personalization and marketing preferences (consents).", "profile-consents", {
      consents = obj("Consents and Preferences", "Specific Consent and Preference Options", {
        collect = consent_field(COLLECT[1], COLLECT[2]),
        share = consent_field(SHARE[1], SHARE[2]),
        personalize = personalize(),
        marketing = marketing("subscriptions"),
        idSpecific = obj("Identifier specific", "Identifier specific consents and preferences", nil, {
          ["meta:xdmType"] = "map",
          additionalProperties = obj("Identifier Type", nil, nil, {
            ["meta:xdmType"] = "map",
            additionalProperties = obj("Identifier", nil, {
              collect = consent_field(COLLECT[1], COLLECT[2]),
              share = consent_field(SHARE[1], SHARE[2]),
              adID = consent_field(ADID[1], ADID[2]),
              personalize = personalize(),
              marketing = marketing("id"),
            }),
          }),
        }),
        metadata = metadata(),
      }),
    }, { ["meta:extensible"] = true, ["meta:abstract"] = true, ["meta:intendedToExtend"] = { b.PROFILE },
         ["meta:extends"] = { DATATYPE }, ["meta:tags"] = { industry = { "all" } } })
end
