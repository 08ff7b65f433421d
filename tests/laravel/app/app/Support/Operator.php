<?php

namespace App\Support;

use Illuminate\Http\Request;

/** The signed-in operator as the gate's actor (the app's auth, reduced to config/operators.php). */
final class Operator
{
    public static function fromRequest(Request $request): array
    {
        $id = (string) $request->header('X-Operator', 'alice');
        $known = config("operators.$id", ['is_member' => false, 'capabilities' => []]);
        return ['id' => $id, 'is_member' => $known['is_member'], 'capabilities' => $known['capabilities']];
    }
}
