// Package forms is Airlock's one definition of what an intake form is and
// what a valid answer to it looks like. Intake validates a submission with it
// before sealing, transfer re-validates after opening and drops what the clinic
// must not keep, and clinical uses it for labels and FHIR export, so all three
// stages agree on the same rules.
//
// # Forms
//
// A form is a FHIR R4 Questionnaire JSON file, taken unchanged from the tool
// that wrote it, with the SDC extensions Airlock honours; docs/intake.md
// lists what is supported and what is refused, with the reason. Anything
// that would otherwise be ignored silently is refused at load time: ParseWith
// returns a *ParseError listing every problem, each naming the item's path
// and the feature. In short:
//
//   - Questionnaire: id in FHIR's grammar (the URL slug is derived from it,
//     see Slug), url (or one under ParseOptions.BaseURL), version, title
//     (optional: name or id stand in), contained ValueSets, variable
//     extensions. A modifierExtension is rejected, as FHIR requires.
//   - item.type: group, display, string, text, integer, decimal, date,
//     dateTime, time, url, boolean, choice, open-choice, attachment,
//     quantity, and reference: with answerOption valueReference the form
//     lists the records a patient may pick; without options the patient
//     describes the record in text, kept as a valueReference with a
//     display only (no record id is taken from the public side).
//   - Repeating groups (repeats=true on a group), nested if need be: each
//     instance holds its own answers (see Answers below and Item.Scope).
//   - item.text is optional: Item.Label falls back to the code's display,
//     then the linkId. Child items may sit under groups and under questions
//     (their answers nest under the answer on export; under a repeating
//     question, each answer has its own, see Item.HasInstances).
//   - answerOption (coding, string, integer, date), answerValueSet
//     (contained, or from ParseOptions.ValueSets), initial, readOnly,
//     questionnaire-hidden, enableWhen with every operator and
//     enableBehavior, maxLength, minLength, minValue/maxValue,
//     maxDecimalPlaces, regex, entryFormat, mimeType, maxSize, itemControl,
//     questionnaire-unit, unitOption, prefix.
//   - Languages: the Questionnaire's language element (its own language,
//     English when absent) and FHIR's translation extension on title,
//     description, item text and prefix, answerOption displays and
//     valueStrings and entryFormat, and ValueSet designations; read with
//     Languages and the *In methods (LabelIn, TitleIn...). Answers are
//     stored as the form defines them, whatever language the patient read.
//   - SDC calculatedExpression and variable in the FHIRPath subset of
//     fhirpath.go, with ordinalValue/itemWeight scores: computed by
//     Calculate (transfer), never taken from the patient; inside a
//     repeating group, one value per instance with the instance as
//     %context.
//   - The Airlock extensions CarriedExtensionURL and MustBeTrueExtensionURL
//     ({"url": "https://airlock.dev/fhir/StructureDefinition/must-be-true",
//     "valueBoolean": true} on a boolean item: only true is accepted, as for
//     a consent box).
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
// QuestionnaireResponse answer values. A repeating group takes an array of
// objects, one per instance, each keyed by linkId in the same way; its
// normalised answers are one Value per instance with Instance set. Field
// names inside an instance are prefixed by it: "meds[2]/dose". It is written for hostile input: it
// does not panic, bounds its work (MaxAnswersPerItem, DefaultMaxLength), and
// never repeats a submitted value in an error message, because those messages
// end up in logs and on screens. Each message is a catalogue key with its
// parameters (shared/locale), rendered in the reader's language.
package forms
