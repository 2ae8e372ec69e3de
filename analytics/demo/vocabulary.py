"""The demo's words: company, place and person names, activity subjects and notes, dispute reasons.

Activities are simulated as integer codes into these tuples; the frames turn the codes into text.
"""

from __future__ import annotations

import numpy as np

from analytics.store.schema import ACTIVITY_KINDS

# --- activity vocabularies -----------------------------------------------------------------------

KIND = {k: i for i, k in enumerate(ACTIVITY_KINDS)}
DEPARTMENTS = ("collections", "sales", "logistics", "legal", "finance")
OUTCOMES = ("reached", "voicemail", "no_answer", "sent")
STATUSES = ("pending", "kept", "broken", "open", "resolved", "done")
TARGETS = ("manager", "agency")
DISPUTE_REASONS = ("pricing", "damaged goods", "not received", "duplicate billing", "quantity mismatch",
                   "contract terms")
DISPUTE_REASON_SHARES = (0.32, 0.18, 0.18, 0.14, 0.12, 0.06)
DISPUTE_DEPARTMENT = np.array([1, 2, 2, 1, 2, 3])  # index into DEPARTMENTS
SUBJECTS = (
    "Call about", "Overdue invoice", "Promise to pay for", "Dispute on", "Follow up broken promise on",
    "Escalated to manager:", "Find accounts payable email address", "Escalated to manager",
    "Handed to collection agency",
)
(SUBJ_CALL, SUBJ_EMAIL, SUBJ_PROMISE, SUBJ_DISPUTE, SUBJ_BROKEN, SUBJ_ESCALATE_INVOICE, SUBJ_FIND_EMAIL,
 SUBJ_ESCALATE, SUBJ_AGENCY) = range(len(SUBJECTS))
COLLECTOR_NOTES = (
    "Customer confirmed the invoice is approved and scheduled for the next payment run.",
    "AP says the invoice is waiting for a second approval.",
    "Asked for a copy of the invoice and the proof of delivery; sent both.",
    "Customer is changing ERP systems; payments delayed this month.",
    "Statement of account sent to the finance manager.",
    "Customer asked to be contacted by phone, not email.",
    "Cash flow issues mentioned; proposed a payment plan.",
    "Remittance advice received, matching in progress.",
)
SALES_NOTES = (
    "New contract signed; volumes expected to grow next quarter.",
    "Customer unhappy with the last delivery; sales following up.",
    "Price increase announced for next year.",
    "Account review meeting held with purchasing.",
)
BODIES = COLLECTOR_NOTES + SALES_NOTES

# --- names ---------------------------------------------------------------------------------------

BRANDS = (
    "Northwind", "Blue Harbor", "Summit", "Apex", "Cedar", "Granite", "Silver Lake", "Redwood", "Harbor",
    "Pioneer", "Evergreen", "Keystone", "Lakeside", "Riverbend", "Ironwood", "Maple", "Oakridge",
    "Pinecrest", "Sterling", "Westbrook", "Brightwater", "Clearview", "Crescent", "Eagle", "Falcon",
    "Frontier", "Golden Gate", "Highland", "Horizon", "Liberty", "Meridian", "Monarch", "Orion", "Pacific",
    "Prairie", "Quantum", "Rainier", "Sequoia", "Skyline", "Stonebridge", "Sunrise", "Trident", "Union",
    "Vanguard", "Vertex", "Willow", "Atlas", "Beacon", "Cobalt", "Delta", "Everest", "Fairway", "Global",
    "Heritage", "Insight", "Juniper", "Kingsley", "Lighthouse", "Nova", "Oasis",
)
MIDDLES = (
    "", "Bay", "Valley", "Point", "Ridge", "Creek", "Park", "Hill", "Field", "Stone", "Bridge", "Port",
    "Star", "Rock", "Wood", "Line", "Gate", "Mill", "Crest", "Vale", "Brook", "Shore", "Peak", "Grove",
)
TRADES = (
    "Logistics", "Foods", "Medical", "Software", "Engineering", "Manufacturing", "Supply", "Industries",
    "Analytics", "Construction", "Dental Group", "Distribution", "Electric", "Energy", "Fabrication",
    "Freight", "Furniture", "Hardware", "Health", "Hospitality", "Instruments", "Labs", "Marine", "Media",
    "Metals", "Motors", "Networks", "Office Supply", "Packaging", "Paper", "Pharma", "Plastics",
    "Printing", "Robotics", "Security", "Steel", "Systems", "Technologies", "Textiles", "Tools", "Trading",
    "Transport", "Travel", "Water", "Wholesale", "Farms", "Bakery", "Brewing", "Consulting", "Interiors",
)
LEGAL_FORMS = {  # per country, in COUNTRIES order
    0: ("Inc.", "LLC", "Corp.", "Co."), 1: ("GmbH", "AG"), 2: ("SAS", "SARL"), 3: ("B.V.",),
    4: ("Ltd", "PLC"), 5: ("Ltd.", "Inc."),
}
PLACE_PREFIXES = ("", "North ", "South ", "East ", "West ", "New ", "Port ", "Fort ", "Lake ", "Mount ",
                  "Glen ", "Upper ", "Lower ")
PLACES = (
    "Haven", "Ashford", "Bridgeton", "Carlow", "Dunmore", "Elmwood", "Fairfield", "Greenville", "Hampton",
    "Kingston", "Lancaster", "Milford", "Newport", "Oakdale", "Plymouth", "Richmond", "Salem",
    "Springfield", "Trenton", "Weston", "Ashby", "Bexley", "Clifton", "Denton", "Easton", "Franklin",
    "Georgetown", "Hillsboro", "Jackson", "Kendall", "Lexington", "Madison", "Norwood", "Oxford",
    "Preston", "Quincy", "Riverton", "Stratford", "Troy", "Vernon",
)
PUBLIC_FORMS = (
    "City of {}", "{} County", "{} School District", "{} Water Authority", "{} Public Library",
    "{} Transit Authority", "{} Housing Authority", "{} Community College", "Port of {}", "{} Health Board",
)
FIRST_NAMES = (
    "James", "Mary", "Robert", "Linda", "Michael", "Sarah", "David", "Laura", "Daniel", "Emma", "Thomas",
    "Olivia", "Lukas", "Sophie", "Jonas", "Lea", "Pierre", "Camille", "Jan", "Sanne", "Oliver", "Amelia",
    "Liam", "Chloe", "Noah", "Grace", "Ethan", "Hannah", "Mateo", "Priya", "Arjun", "Mei", "Kenji",
    "Fatima", "Omar", "Elena", "Marco", "Julia", "Peter", "Anna",
)
LAST_NAMES = (
    "Smith", "Johnson", "Brown", "Miller", "Davis", "Wilson", "Taylor", "Anderson", "Thomas", "Moore",
    "Martin", "Clark", "Lewis", "Walker", "Young", "King", "Wright", "Scott", "Green", "Baker", "Adams",
    "Nelson", "Hill", "Campbell", "Mitchell", "Roberts", "Carter", "Phillips", "Evans", "Turner",
    "Müller", "Schmidt", "Fischer", "Weber", "Dubois", "Laurent", "Bernard", "de Vries", "Jansen",
    "Bakker", "Murphy", "Kelly", "Tremblay", "Gagnon", "Roy", "Chen", "Nguyen", "Singh", "Khan", "Garcia",
)
TLDS = (".com", ".de", ".fr", ".nl", ".co.uk", ".ca")
PHONE_CODES = ("+1", "+49", "+33", "+31", "+44", "+1")
LEGAL_FORM_AT_END = r" (?:Inc\.|LLC|Corp\.|Co\.|GmbH|AG|SAS|SARL|B\.V\.|Ltd\.?|PLC)(?= \d+$|$)"
CONTACT_ROLES = ("accounts_payable", "finance_manager", "purchasing", "owner")
