# The existing-vpc example runs Python: LMI supports python3.13 and later.
import json

cold_start = True


def handler(event, context):
    global cold_start
    was_cold, cold_start = cold_start, False
    print(json.dumps({"level": "INFO", "message": "invoked", "cold_start": was_cold}))
    return {"statusCode": 200, "body": json.dumps({"cold_start": was_cold})}
