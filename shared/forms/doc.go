// Package forms is Airlock's one definition of what an intake form is and
// what a valid answer to it looks like. Intake validates a submission with it
// before sealing, transfer re-validates after opening and drops what the clinic
// must not keep, and clinical uses it for labels and FHIR export, so all three
// stages agree on the same rules.
//
// # Forms
//
// A form is a FHIR R4 Questionnaire JSON file. Airlock supports a documented
// subset and rejects, at load time, anything it would otherwise have to
// ignore silently:
//
//   - Questionnaire: resourceType "Questionnaire", id (the form's URL slug,
//     ^[a-z0-9][a-z0-9-]{0,63}$), url, version, title (required), status,
//     description, item (at least one). A modifierExtension is rejected, as
//     FHIR requires of a reader that does not understand it.
//   - item.type: group, display, string, text, integer, decimal, date,
//     dateTime, boolean, choice, open-choice, attachment.
//   - item.linkId: required, unique across the whole form, at most 255
//     characters, no spaces or control characters.
//   - item.text: required for questions and display items (it is the label).
//   - item.required: a required question must be answered whenever it is
//     enabled, whether or not anything else in its group was answered; a
//     required group needs at least one answered question below it.
//   - item.repeats: on questions only (repeating groups cannot be expressed
//     as answers keyed by linkId).
//   - item.maxLength: on string, text and open-choice only, counted in
//     characters (runes). Without it, DefaultMaxLength applies.
//   - item.answerOption: valueCoding (with a code) or valueString, on choice
//     and open-choice only; option codes and strings must be unique within
//     the item, because the patient submits only the code. answerValueSet is
//     not supported.
//   - item.enableWhen with operators exists, = and != and answerBoolean,
//     answerString, answerInteger, answerCoding or answerDate; the answer
//     type must suit the question it refers to, the question must exist and
//     be answerable, and the conditions must not form a cycle.
//     item.enableBehavior is "all" (the default) or "any". As in FHIR, "!="
//     holds when no answer equals the given one (so also when there is no
//     answer), and a disabled question counts as unanswered.
//   - Child items only under groups; children of a disabled group are
//     disabled too.
//   - The standard extensions http://hl7.org/fhir/StructureDefinition/minValue
//     and .../maxValue (valueInteger or valueDecimal) on integer and decimal
//     items.
//   - The Airlock extension CarriedExtensionURL (below).
//   - The Airlock extension MustBeTrueExtensionURL on boolean items
//     ({"url": "https://airlock.dev/fhir/StructureDefinition/must-be-true",
//     "valueBoolean": true}): only true is accepted, as for a consent box.
//
// Other elements (initial, prefix, code, rendering extensions and so on) are
// ignored; readOnly is rejected because a patient could still answer the item.
//
// # Carried to the clinic
//
// Each item says whether its answers are carried to the clinic. By default
// they are; an item marked with
//
//	"extension": [{"url": "https://airlock.dev/fhir/StructureDefinition/carried-to-clinic", "valueBoolean": false}]
//
// is validated at intake but dropped by transfer (consent metadata,
// anti-abuse fields, contact details the clinic must not keep), and so are
// all items below it.
//
// # Answers
//
// Validate takes the answers as a JSON object keyed by linkId, whose values
// are JSON strings, numbers, booleans, FHIR Attachment objects, or arrays of
// these for repeating items, and returns them normalised as FHIR
// QuestionnaireResponse answer values. It is written for hostile input: it
// does not panic, bounds its work (MaxAnswersPerItem, DefaultMaxLength), and
// never repeats a submitted value in an error message, because those messages
// end up in logs and on screens.
package forms
